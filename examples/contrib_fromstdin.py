"""``seq 5 | aiopod run -c examples/contrib_fromstdin.py``: each line of stdin, consumed; ends at EOF."""

BEANS = [{"core": "contrib_servers.Lines", "label": "lines", "encoding": "utf-8", "consumer_num": 1}]
