"""The beans of a pod by id and label: the live ones and a bounded history of ended ones."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .bean import PENDING, Bean, BeanState
from .errors import AmbiguousBean, BeanNotFound

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .bean import Kind
    from .pod import Pod
    from .supervision import RestartPolicy

#: How many ended beans a pod keeps for ``ps()`` and lookups (``BEAN_HISTORY``): enough to
#: see what just happened, little enough that a pod starting a bean per job stays bounded.
DEFAULT_HISTORY = 1000

BeanRef = int | str | Bean


class BeanRegistry:
    """Beans by id and label, how many are live, and the ended ones still kept.

    A bean is *live* from its start until it ends for good (a restart in between does
    not count). When a bean ends it joins the history; past ``history`` ended beans the
    oldest is dropped, with its label entry, and its id is never given out again.
    """

    def __init__(self, pod: Pod, history: int = DEFAULT_HISTORY) -> None:
        if isinstance(history, bool) or not isinstance(history, int) or history < 0:
            raise ValueError(f"bean history must be a whole number >= 0, got {history!r}")
        self.pod = pod
        self.history = history
        self.live = 0
        self._beans: dict[int, Bean] = {}
        self._labels: dict[str, dict[int, Bean]] = {}
        self._ended: deque[Bean] = deque()  # the kept ended beans, oldest first
        self._next_id = 1
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._on_idle: list[Callable[[], object]] = []

    # -- adding and ending ----------------------------------------------------------

    def new(
        self,
        obj: Any,
        core: str,
        kind: Kind,
        label: str | None,
        kwargs: Mapping[str, Any],
        restart: RestartPolicy | None,
        *,
        live: bool = False,
    ) -> Bean:
        """Make a bean with the next id, ``live`` if it starts at once (a hot add)."""
        bean_id = self._next_id
        self._next_id = bean_id + 1
        bean = self._beans[bean_id] = Bean(self.pod, bean_id, obj, core, kind, label, kwargs, restart)
        if label is not None:
            self._labels.setdefault(label, {})[bean_id] = bean
        if live:
            self.live += 1
        return bean

    def started(self, bean: Bean) -> None:
        """``bean`` is live (again): an ended one started again leaves the history."""
        self.live += 1
        if bean.state is not PENDING:
            self._ended.remove(bean)  # O(history), for a restart by hand only

    def start_pending(self) -> list[Bean]:
        """The pending beans, in id order, all made live at once (the pod starts them next)."""
        pending = self.pending()
        self.live += len(pending)
        return pending

    def ended(self, bean: Bean, state: BeanState, exception: BaseException | None = None, *, live: bool = True) -> None:
        """A bean has ended for good (``live``: it had started), with ``exception`` if its task
        raised one: keep it in the history, and drop the oldest ended one past the limit."""
        bean.end(state, exception)
        ended = self._ended
        ended.append(bean)
        if len(ended) > self.history:  # one in, one out
            old = ended.popleft()
            del self._beans[old.id]
            old.dropped()
            if old.label is not None:
                same = self._labels[old.label]
                del same[old.id]
                if not same:
                    del self._labels[old.label]
        if live:
            self.live -= 1
            if self.live == 0:
                waiters, self._idle_waiters = self._idle_waiters, []
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
                for listener in self._on_idle:
                    listener()

    def on_idle(self, listener: Callable[[], object]) -> None:
        """Call ``listener()`` each time the last live bean ends."""
        self._on_idle.append(listener)

    def idle(self) -> asyncio.Future[None]:
        """A future done when no bean is live."""
        future = asyncio.get_running_loop().create_future()
        if self.live == 0:
            future.set_result(None)
        else:
            self._idle_waiters.append(future)
        return future

    # -- reading --------------------------------------------------------------------

    def __iter__(self) -> Any:
        return iter(self._beans.values())

    def __len__(self) -> int:
        return len(self._beans)

    def pending(self) -> list[Bean]:
        return [bean for bean in self._beans.values() if bean.state is PENDING]

    def running(self) -> list[Bean]:
        """The beans whose task has not ended yet, in id order."""
        return [b for b in self._beans.values() if b.task is not None and not b.task.done()]

    def get(self, ref: BeanRef) -> list[Bean]:
        """The beans with this id or label (or this very bean); raises ``BeanNotFound``."""
        if isinstance(ref, Bean):
            if self._beans.get(ref.id) is ref:
                return [ref]
        elif isinstance(ref, int) and not isinstance(ref, bool):
            if ref in self._beans:
                return [self._beans[ref]]
        elif isinstance(ref, str):
            if ref in self._labels:
                return list(self._labels[ref].values())
            if ref.isdigit() and int(ref) in self._beans:
                return [self._beans[int(ref)]]
        raise BeanNotFound(self._not_found(ref))

    def get_one(self, ref: BeanRef) -> Bean:
        """The one bean with this id or label; ``BeanNotFound`` if none, ``AmbiguousBean`` if several."""
        beans = self.get(ref)
        if len(beans) > 1:
            ids = ", ".join(str(b.id) for b in beans)
            raise AmbiguousBean(f"{len(beans)} beans have label {ref!r} (ids {ids}); ask for one by id")
        return beans[0]

    def _not_found(self, ref: object) -> str:
        number = ref.id if isinstance(ref, Bean) else int(ref) if isinstance(ref, str) and ref.isdigit() else ref
        what = f"id {ref}" if isinstance(ref, int) else f"label {ref!r}" if isinstance(ref, str) else repr(ref)
        if isinstance(number, int) and 0 < number < self._next_id:
            ref = number
            return (
                f"bean {ref} ended and was dropped from the history, which keeps the last {self.history} "
                "ended beans; raise BEAN_HISTORY (--bean-history) to keep more"
            )
        if not self._beans:
            return f"no bean with {what}: the pod has no beans"
        labels = sorted(self._labels)
        shown = ", ".join(repr(label) for label in labels[:20]) + (" ..." if len(labels) > 20 else "")
        ids = f"ids {min(self._beans)}-{max(self._beans)}" if len(self._beans) > 1 else f"id {min(self._beans)}"
        return f"no bean with {what}; there are {ids}" + (f" and labels {shown}" if labels else " and no labels")
