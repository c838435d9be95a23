#!/usr/bin/python3
"""Overload: 64 concurrent clients for LOAD_SECONDS (60 by default) against
the real service binary on loopback, with a mix of good ads, broken files,
messages over the size limit, and curators adding and removing references.

Passes when every failure is one of the explicit answers to overload or bad
input (RESOURCE_EXHAUSTED, INVALID_ARGUMENT, DEADLINE_EXCEEDED), a broken
file is never answered OK, a message over the size limit is always
RESOURCE_EXHAUSTED, good requests and adds are answered, the
process's file descriptors and threads do not grow from the warmed-up level
to the end, and its peak RSS stays bounded. Prints the figures (calls by
outcome, p50/p99 of answered Match calls, peak RSS, fds and threads).
"""
import collections
import hashlib
import os
import random
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import cv2
import grpc
import numpy as np
from spoor.v1 import spoor_pb2, spoor_pb2_grpc

SERVICE = os.environ["SPOOR_QUERY_SERVICE"]
INDEXER = os.environ["SPOOR_INDEXER"]
SOURCE = os.environ["SPOOR_SOURCE_DIR"]
REFS = os.path.join(SOURCE, "reference_images", "references")
ADS = os.path.join(SOURCE, "reference_images", "sample_ads")
FIXTURES = os.path.join(SOURCE, "tests", "data")
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
# Peak RSS allowed; sanitizer builds raise it for ASan's shadow memory.
MAX_RSS_MB = float(os.environ.get("LOAD_MAX_RSS_MB", "2048"))
CLIENTS = 64
KEYS = {"platform": "load-platform", "curator": "load-curator"}
ALLOWED = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT,
           grpc.StatusCode.DEADLINE_EXCEEDED}


def read(path):
    with open(path, "rb") as f:
        return f.read()


def proc_status(pid):
    """(fds, threads, peak RSS in MB) of process `pid`, from /proc."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = peak = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return fds, threads, peak


def noise_jpeg(rng):
    """A distinct, textured 320x240 JPEG: a new reference each time."""
    img = np.frombuffer(rng.randbytes(240 * 320 * 3), np.uint8).reshape(240, 320, 3)
    ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return enc.tobytes()


class Overload(unittest.TestCase):
    def test_sixty_four_clients_get_only_explicit_answers(self):
        tmp = tempfile.TemporaryDirectory()
        index = os.path.join(tmp.name, "index")
        subprocess.run([INDEXER, "build", "--index", index, REFS], check=True,
                       stderr=subprocess.DEVNULL)
        keys = os.path.join(tmp.name, "keys.toml")
        with open(keys, "w") as f:
            for role, key in KEYS.items():
                digest = hashlib.sha256(key.encode()).hexdigest()
                f.write(f'[[key]]\nname = "{role}"\nsha256 = "{digest}"\n'
                        f'roles = ["{role}"]\n\n')
        port_file = os.path.join(tmp.name, "port")
        server = subprocess.Popen(
            [SERVICE, "--index", index, "--listen", "127.0.0.1:0",
             "--metrics-listen", "", "--api-keys", keys, "--port-file",
             port_file, "--save-interval-seconds", "5", "--log-level", "error"],
            stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 60
            while True:
                try:
                    with open(port_file) as f:
                        port = int(f.read())
                    break
                except (OSError, ValueError):
                    if time.time() > deadline or server.poll() is not None:
                        raise RuntimeError("service did not start")
                    time.sleep(0.05)
            self.run_load(server, port)
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=60)
            tmp.cleanup()
        self.assertEqual(code, 0, "service did not exit cleanly on SIGTERM")

    def run_load(self, server, port):
        good = [read(os.path.join(ADS, f)) for f in sorted(os.listdir(ADS))]
        bad = [read(os.path.join(FIXTURES, f)) for f in
               ("truncated.jpg", "truncated.png", "not_an_image.txt",
                "image.svg", "document.pdf", "bomb_30000x30000.png")]
        oversized = b"\xff\xd8\xff" + b"x" * (30 << 20)  # over 24 MiB
        outcomes = collections.Counter()
        unexpected = []
        latencies = []
        lock = threading.Lock()
        stop = threading.Event()
        samples = {}

        def client(n):
            rng = random.Random(n)
            channel = grpc.insecure_channel(
                f"127.0.0.1:{port}",
                options=[("grpc.max_send_message_length", 64 << 20)])
            stub = spoor_pb2_grpc.SpoorStub(channel)
            platform = [("authorization", "Bearer " + KEYS["platform"])]
            curator = [("authorization", "Bearer " + KEYS["curator"])]
            mine = []  # names of references this client added
            while not stop.is_set():
                kind = rng.choices(["good", "bad", "oversized", "add", "remove"],
                                   [60, 20, 3, 12, 5])[0]
                want = {"bad": grpc.StatusCode.INVALID_ARGUMENT,
                        "oversized": grpc.StatusCode.RESOURCE_EXHAUSTED}.get(kind)
                started = time.time()
                try:
                    if kind in ("good", "bad", "oversized"):
                        data = {"good": lambda: rng.choice(good),
                                "bad": lambda: rng.choice(bad),
                                "oversized": lambda: oversized}[kind]()
                        stub.Match(spoor_pb2.MatchRequest(image=data),
                                   metadata=platform, timeout=10)
                        if kind == "good":
                            with lock:
                                latencies.append(time.time() - started)
                    elif kind == "add":
                        r = stub.AddReference(
                            spoor_pb2.AddReferenceRequest(
                                image=noise_jpeg(rng), source=f"load-{n}"),
                            metadata=curator, timeout=10)
                        mine.append(r.reference.name)
                    elif mine:
                        stub.RemoveReference(
                            spoor_pb2.RemoveReferenceRequest(name=mine.pop()),
                            metadata=curator, timeout=10)
                    else:
                        continue
                    outcome = "OK"
                    if want is not None:
                        with lock:
                            unexpected.append((kind, "OK"))
                except grpc.RpcError as e:
                    outcome = e.code().name
                    # A broken file is refused when a worker looks at it; a
                    # full queue may refuse it first, as overload (an OK
                    # answer to one is caught above). An oversized message
                    # never reaches a handler.
                    wrong = kind == "oversized" and e.code() != want
                    if e.code() not in ALLOWED or wrong:
                        with lock:
                            unexpected.append((kind, e.code().name, e.details()))
                with lock:
                    outcomes[(kind, outcome)] += 1
            channel.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(min(10, SECONDS / 4))
        samples["warm"] = proc_status(server.pid)
        time.sleep(max(0, SECONDS - min(10, SECONDS / 4)))
        stop.set()
        for t in threads:
            t.join()
        time.sleep(2)  # let the server finish what was in flight
        samples["end"] = proc_status(server.pid)

        latencies.sort()
        p = lambda q: latencies[int(q * (len(latencies) - 1))] * 1000 if latencies else 0
        total = sum(outcomes.values())
        print(f"load: {CLIENTS} clients, {SECONDS:.0f} s, {total} calls "
              f"({total / SECONDS:.1f}/s); outcomes "
              f"{dict(sorted((f'{k} {o}', c) for (k, o), c in outcomes.items()))}",
              flush=True)
        print(f"load: answered good Match p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms; "
              f"fds {samples['warm'][0]} -> {samples['end'][0]}, threads "
              f"{samples['warm'][1]} -> {samples['end'][1]}, peak RSS "
              f"{samples['end'][2]:.0f} MB", flush=True)

        self.assertEqual(unexpected[:5], [], f"{len(unexpected)} unexpected answers")
        self.assertGreater(outcomes[("good", "OK")], 0)
        self.assertGreater(outcomes[("add", "OK")], 0)
        self.assertGreater(outcomes[("bad", "INVALID_ARGUMENT")], 0)
        self.assertGreater(outcomes[("oversized", "RESOURCE_EXHAUSTED")], 0)
        # No leak: what the warmed-up process held, it holds at the end.
        self.assertLessEqual(samples["end"][0], samples["warm"][0] + 8)
        self.assertLessEqual(samples["end"][1], samples["warm"][1] + 8)
        self.assertLess(samples["end"][2], MAX_RSS_MB)
        # And it still answers, promptly, once the load is gone.
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = spoor_pb2_grpc.SpoorStub(channel)
        stub.Match(spoor_pb2.MatchRequest(image=good[0]),
                   metadata=[("authorization", "Bearer " + KEYS["platform"])],
                   timeout=10)
        channel.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
