#!/usr/bin/python3
"""Crash consistency: kill -9 at random moments, then prove nothing
acknowledged was lost.

Two loops over the real binaries and one index directory each:

* the service, under concurrent Match load, adding and removing references
  and saving every second (so kills land in saves too), is killed with
  SIGKILL at a random moment; after each kill `spoor-indexer verify` must
  pass, every add the service acknowledged must be listed (unless its remove
  was acknowledged too) and every acknowledged remove must be gone; at the
  end each surviving added image must match itself;
* `spoor-indexer build` over a folder of photos is killed at a random moment;
  after each kill `verify` must pass and the references already listed must
  still be there on the next run, and a last uninterrupted build completes.

The seed, the kill counts and the acknowledged writes checked are printed
(and KILL9_KILLS overrides the default of 30 + 20 kills). Run by ctest with
the same environment as test_service.py.
"""
import hashlib
import json
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
WALLPAPERS = "/usr/share/wallpapers"
KEY = "kill9-key"
KILLS = int(os.environ.get("KILL9_KILLS", "50"))
SEED = int(os.environ.get("KILL9_SEED", str(int(time.time()))))


def photos():
    """Large landscape photos from plasma-workspace-wallpapers."""
    out = []
    for root, _, files in os.walk(WALLPAPERS):
        for f in sorted(files):
            if f.endswith((".jpg", ".png")) and "1920x1080" in f:
                out.append(os.path.join(root, f))
    return sorted(out)


def distinct_images(rng, count):
    """`count` JPEGs, each a different 480x360 window of a wallpaper photo:
    distinct bytes, real texture, so each is its own reference."""
    sources = [cv2.imread(p) for p in photos()[:8]]
    sources = [s for s in sources if s is not None]
    out, seen = [], set()
    while len(out) < count:
        img = sources[rng.randrange(len(sources))]
        h, w = img.shape[:2]
        x, y = rng.randrange(w - 480), rng.randrange(h - 360)
        window = img[y:y + 360, x:x + 480]
        grey = cv2.cvtColor(window, cv2.COLOR_BGR2GRAY)
        if cv2.Laplacian(grey, cv2.CV_64F).var() < 100:
            continue  # sky or mist: no evidence to match on, so no use here
        ok, enc = cv2.imencode(".jpg", window, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        digest = hashlib.sha256(enc.tobytes()).digest()
        if digest in seen:
            continue  # the same window twice would be one reference
        seen.add(digest)
        out.append(enc.tobytes())
    return out


def listed(index):
    """sha256 -> ref_id of every reference, from `spoor-indexer list`."""
    run = subprocess.run([INDEXER, "list", "--json", "--index", index],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    refs = {}
    for line in run.stdout.splitlines():
        if line.strip():
            r = json.loads(line)
            refs[r["sha256"]] = r["ref_id"]
    return refs


def verify(index):
    run = subprocess.run([INDEXER, "verify", "--index", index],
                         capture_output=True, text=True)
    return run.returncode, run.stdout + run.stderr


def read(path):
    with open(path, "rb") as f:
        return f.read()


class Service:
    """The service binary on a free loopback port."""

    def __init__(self, index, tmp):
        keys = os.path.join(tmp, "keys.toml")
        digest = hashlib.sha256(KEY.encode()).hexdigest()
        with open(keys, "w") as f:
            f.write(f'[[key]]\nname = "kill9"\nsha256 = "{digest}"\n'
                    'roles = ["platform", "curator"]\n')
        port_file = os.path.join(tmp, "port")
        if os.path.exists(port_file):
            os.remove(port_file)
        self.proc = subprocess.Popen(
            [SERVICE, "--index", index, "--listen", "127.0.0.1:0",
             "--metrics-listen", "", "--api-keys", keys, "--port-file",
             port_file, "--save-interval-seconds", "1", "--log-level", "warn"],
            stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        def port():
            try:
                with open(port_file) as f:
                    return int(f.read())
            except (OSError, ValueError):
                return None
        while port() is None:
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("service did not start")
            time.sleep(0.02)
        port = port()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = spoor_pb2_grpc.SpoorStub(self.channel)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.channel.close()


META = [("authorization", "Bearer " + KEY)]


class KillNine(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.rng = random.Random(SEED)
        self.service_kills = max(1, KILLS * 3 // 5)
        self.build_kills = max(1, KILLS - self.service_kills)
        print(f"kill9: seed {SEED}, {self.service_kills} service kills, "
              f"{self.build_kills} build kills", flush=True)

    def tearDown(self):
        self.tmp.cleanup()

    def test_service_killed_under_load_loses_no_acknowledged_write(self):
        index = os.path.join(self.tmp.name, "service_index")
        subprocess.run([INDEXER, "build", "--index", index, REFS], check=True,
                       stderr=subprocess.DEVNULL)
        images = distinct_images(self.rng, 6 * self.service_kills)
        ads = [read(os.path.join(ADS, f)) for f in sorted(os.listdir(ADS))]
        added = {}      # sha256 -> (bytes, name): acknowledged adds
        removed = set()  # sha256 of acknowledged removes
        uncertain = set()  # removes in flight at a kill: either outcome
        next_image = 0
        checked_adds = checked_removes = 0
        for kill in range(self.service_kills):
            service = Service(index, self.tmp.name)
            stop = threading.Event()
            match_errors = []

            def load():
                # Concurrent Match traffic; errors other than the kill's
                # UNAVAILABLE / CANCELLED are failures.
                while not stop.is_set():
                    try:
                        service.stub.Match(
                            spoor_pb2.MatchRequest(
                                image=ads[self.rng.randrange(len(ads))]),
                            metadata=META, timeout=10)
                    except grpc.RpcError as e:
                        if e.code() not in (grpc.StatusCode.UNAVAILABLE,
                                            grpc.StatusCode.CANCELLED,
                                            grpc.StatusCode.DEADLINE_EXCEEDED):
                            match_errors.append(e)
                        if e.code() == grpc.StatusCode.UNAVAILABLE:
                            return

            def writes():
                nonlocal next_image
                while not stop.is_set() and next_image < len(images):
                    live = [s for s in added
                            if s not in removed and s not in uncertain]
                    sha = None
                    try:
                        if live and self.rng.random() < 0.3:
                            sha = self.rng.choice(live)
                            service.stub.RemoveReference(
                                spoor_pb2.RemoveReferenceRequest(
                                    name=added[sha][1]),
                                metadata=META, timeout=10)
                            removed.add(sha)  # acknowledged
                        else:
                            data = images[next_image]
                            next_image += 1
                            r = service.stub.AddReference(
                                spoor_pb2.AddReferenceRequest(
                                    image=data, source=f"kill9-{next_image}"),
                                metadata=META, timeout=10)
                            added[r.reference.sha256] = (data,
                                                         r.reference.name)
                    except grpc.RpcError as e:
                        # The kill: the write's outcome is unknown, so a
                        # remove in flight is checked neither way.
                        if sha is not None:
                            uncertain.add(sha)
                        if e.code() not in (grpc.StatusCode.UNAVAILABLE,
                                            grpc.StatusCode.CANCELLED):
                            match_errors.append(e)
                        return

            threads = [threading.Thread(target=load),
                       threading.Thread(target=load),
                       threading.Thread(target=writes)]
            for t in threads:
                t.start()
            time.sleep(self.rng.uniform(0.3, 2.5))
            service.proc.send_signal(signal.SIGKILL)
            service.proc.wait()
            stop.set()
            for t in threads:
                t.join()
            service.channel.close()
            self.assertEqual(match_errors, [], f"kill {kill}")

            code, text = verify(index)
            self.assertEqual(code, 0, f"verify after kill {kill}: {text}")
            refs = listed(index)
            for sha in added:
                if sha in uncertain:
                    continue
                if sha in removed:
                    self.assertNotIn(sha, refs, f"removed ref back, kill {kill}")
                    checked_removes += 1
                else:
                    self.assertIn(sha, refs, f"acknowledged add lost, kill {kill}")
                    checked_adds += 1

        # Every surviving add still matches its own image after all the
        # crashes (the first defect: it was listed but never matched).
        service = Service(index, self.tmp.name)
        try:
            live = [s for s in added if s not in removed and s not in uncertain]
            self.assertGreater(len(live), 0)
            for sha in self.rng.sample(live, min(5, len(live))):
                r = service.stub.Match(
                    spoor_pb2.MatchRequest(
                        image=added[sha][0],
                        options=spoor_pb2.MatchOptions(max_results=20)),
                    metadata=META, timeout=30)
                # Windows of one wallpaper may overlap, so another added
                # window can match too; the image's own reference must be
                # there, as an exact copy.
                own = [m for m in r.matches if m.reference.sha256 == sha]
                self.assertEqual(len(own), 1, sha)
                self.assertEqual(own[0].verdict, spoor_pb2.EXACT)
        finally:
            service.kill()
        print(f"kill9: service: {self.service_kills} kills, "
              f"{len(added)} acknowledged adds and {len(removed)} removes "
              f"({len(uncertain)} removes in flight at a kill); "
              f"{checked_adds} add and {checked_removes} remove checks passed",
              flush=True)

    def test_indexer_build_killed_midway_leaves_a_valid_index(self):
        index = os.path.join(self.tmp.name, "build_index")
        folder = os.path.join(self.tmp.name, "photos")
        os.makedirs(folder)
        for i, data in enumerate(distinct_images(self.rng, 40)):
            with open(os.path.join(folder, f"p{i:02d}.jpg"), "wb") as f:
                f.write(data)
        before = {}
        for kill in range(self.build_kills):
            proc = subprocess.Popen([INDEXER, "build", "--index", index, folder],
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(self.rng.uniform(0.05, 1.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if not os.path.exists(os.path.join(index, "manifest.json")):
                continue  # killed before the index was created
            code, text = verify(index)
            self.assertEqual(code, 0, f"verify after build kill {kill}: {text}")
            refs = listed(index)
            for sha in before:
                self.assertIn(sha, refs, f"reference lost, build kill {kill}")
            before = refs
        done = subprocess.run([INDEXER, "build", "--index", index, folder],
                              capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(len(listed(index)), 40)
        self.assertEqual(verify(index)[0], 0)
        print(f"kill9: build: {self.build_kills} kills, {len(before)} "
              "references present before the last build", flush=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
