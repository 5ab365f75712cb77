#!/usr/bin/python3
# A real Redis client library (Debian's python3-redis) against shoald --resp: strings, expiry,
# counters, pipelines, scan_iter. Usage: resp_redis_py_test.py PATH_TO_SHOALD
import subprocess
import sys
import time

import redis

shoald = subprocess.Popen([sys.argv[1], "--listen", "127.0.0.1:0", "--resp", "127.0.0.1:0", "--log-level", "warn"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    line = shoald.stdout.readline()
    port = int(line.split(" resp ")[1].strip().rsplit(":", 1)[1])
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, decode_responses=True)
    assert r.ping()
    assert r.set("user:1", "alice")
    assert r.get("user:1") == "alice"
    assert r.set("user:1", "bob", nx=True) is None
    assert r.getset("user:1", "carol") == "alice"
    assert r.incr("hits") == 1 and r.incrby("hits", 41) == 42
    assert abs(r.incrbyfloat("price", 1.5) - 1.5) < 1e-9
    r.setex("session", 100, "token")
    assert 99 <= r.ttl("session") <= 100
    assert r.persist("session") and r.ttl("session") == -1
    r.mset({"a": "1", "b": "2"})
    assert r.mget(["a", "b", "missing"]) == ["1", "2", None]
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.set(f"p:{i}", i)
    pipe.execute()
    assert sorted(r.scan_iter(match="p:*", count=100)) == sorted(f"p:{i}" for i in range(1000))
    assert r.delete("a", "b", "missing") == 2
    assert r.exists("user:1") == 1
    try:
        r.execute_command("NOSUCHCOMMAND")
        raise AssertionError("unknown command accepted")
    except redis.ResponseError as e:
        assert "unknown command" in str(e)
    r.set("short", "x", px=100)
    time.sleep(0.3)
    assert r.get("short") is None
    print("1 passed, 0 failed")
finally:
    shoald.terminate()
    shoald.wait(timeout=10)
