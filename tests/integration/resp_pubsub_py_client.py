#!/usr/bin/python3
# The python3-redis side of "resp: a python3-redis subscriber receives RESP and Shoal publishes"
# (resp_pubsub_test.cpp, which publishes through the embedded API when this script signals on
# topic 'orders-ready'). Usage: resp_pubsub_py_client.py RESP_PORT
import sys
import time

import redis


def wait_for(pubsub, kind, deadline):
    while time.time() < deadline:
        m = pubsub.get_message(timeout=max(0.01, min(1.0, deadline - time.time())))
        if m is not None and m["type"] == kind:
            return m
    raise AssertionError(f"no {kind} message before the deadline")


r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), socket_timeout=10, decode_responses=True)
p = r.pubsub()
deadline = time.time() + 30
p.subscribe("orders")
m = wait_for(p, "subscribe", deadline)
assert m["channel"] == "orders" and m["data"] == 1, m
# One RESP subscriber on this member: the reply counts it.
assert r.publish("orders", "from-redis") == 1
m = wait_for(p, "message", deadline)
assert m["channel"] == "orders" and m["data"] == "from-redis", m
# The test publishes 'from-shoal' through the embedded API once it sees this.
r.publish("orders-ready", "ready")
m = wait_for(p, "message", deadline)
assert m["channel"] == "orders" and m["data"] == "from-shoal", m

# Patterns: metrics.cpu exists already, so PSUBSCRIBE's confirmation comes once it is subscribed.
p.psubscribe("metrics.*")
m = wait_for(p, "psubscribe", deadline)
assert m["channel"] == "metrics.*" and m["data"] == 2, m
r.publish("orders-ready", "pattern")
m = wait_for(p, "pmessage", deadline)
assert m["pattern"] == "metrics.*" and m["channel"] == "metrics.cpu" and m["data"] == "new", m

p.unsubscribe("orders")
m = wait_for(p, "unsubscribe", deadline)
assert m["channel"] == "orders" and m["data"] == 1, m
p.punsubscribe()
m = wait_for(p, "punsubscribe", deadline)
assert m["data"] == 0, m
p.close()
print("1 passed, 0 failed")
