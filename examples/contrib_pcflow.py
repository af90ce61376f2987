"""``aiopod run -c examples/contrib_pcflow.py``: one producer, four consumers; Ctrl-C loses no item."""

BEANS = [{"core": "contrib_servers.Numbers", "label": "numbers", "consumer_num": 4, "queue_size": 8}]
