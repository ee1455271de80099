#!/usr/bin/env python3
"""Runs one real EasyTier node (the easytier-pyo3 wheel) for tests, driven over stdin/stdout.

    node.py '<config JSON>'

The config JSON is the easytier-core TOML layout as a dict (network_identity, ipv4, listeners,
peer, flags, ...). Offline defaults are filled in unless given: empty STUN lists and UPnP off,
so the node never reaches beyond its namespace. After start() it prints one JSON line
{"event":"ready","peer_id":N,"version":"...","listeners":[...]}. Then each stdin line is a query:
a bare word "peers", "routes", "metrics", "node_info" or "stop", or a JSON object
{"q":"wait_routes","peer_ids":[...],"timeout_s":S}, which answers once routes() lists every one of
peer_ids (or when S seconds have passed, with "ok":false). It re-checks whenever EasyTier reports an
event, and at least every 0.2 s, since not every route change raises one.
Each query is answered by one JSON line {"event":"<query>","result":...}; a failure answers
{"event":"error","query":...,"error":"..."}. EOF of stdin or "stop" stops the node and exits 0.
"""
import json
import sys
import time

import easytier_pyo3


def offline(config: dict) -> dict:
    # Empty STUN lists and no UPnP: a test node must never try to reach the internet.
    config.setdefault("stun_servers", [])
    config.setdefault("stun_servers_v6", [])
    flags = config.setdefault("flags", {})
    flags.setdefault("disable_upnp", True)
    return config


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def wait_routes(node, peer_ids: list, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        routes = node.routes()
        listed = {r.get("peer_id") for r in routes}
        if all(p in listed for p in peer_ids):
            return {"ok": True, "routes": routes}
        left = deadline - time.monotonic()
        if left <= 0:
            return {"ok": False, "routes": routes}
        node.next_event(min(left, 0.2))


def main() -> int:
    if len(sys.argv) != 2:
        sys.stderr.write("usage: node.py '<config JSON>'\n")
        return 2
    try:
        config = offline(json.loads(sys.argv[1]))
    except (json.JSONDecodeError, AttributeError) as e:
        sys.stderr.write(f"node.py: config is not a JSON object: {e}\n")
        return 2
    node = easytier_pyo3.Node(config)
    try:
        node.start()
    except RuntimeError as e:
        sys.stderr.write(f"node.py: start failed: {e}\n")
        return 1
    emit({"event": "ready", "peer_id": node.peer_id(), "version": easytier_pyo3.version(),
          "listeners": node.running_listeners()})
    queries = {"peers": node.peers, "routes": node.routes, "metrics": node.metrics,
               "node_info": node.node_info}
    for line in sys.stdin:
        q = line.strip()
        if q == "stop":
            break
        try:
            if q.startswith("{"):
                args = json.loads(q)
                q = args.get("q")
                if q != "wait_routes":
                    raise ValueError("unknown query")
                result = wait_routes(node, args["peer_ids"], float(args["timeout_s"]))
            elif q in queries:
                result = queries[q]()
            else:
                raise ValueError("unknown query")
            emit({"event": q, "result": result})
        except Exception as e:  # one failed query must not end the node
            emit({"event": "error", "query": q, "error": str(e)})
    node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
