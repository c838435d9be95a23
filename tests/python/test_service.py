#!/usr/bin/python3
"""spoor-query-service from another language: Debian's python3-grpcio with
stubs generated from proto/spoor/v1/spoor.proto by grpc_python_plugin.

Starts the real service binary on a free loopback port over an index built by
spoor-indexer, and checks answers and error codes. Run by ctest with
SPOOR_QUERY_SERVICE, SPOOR_INDEXER, SPOOR_SOURCE_DIR and PYTHONPATH set.
"""
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import grpc
from spoor.v1 import spoor_pb2, spoor_pb2_grpc

SERVICE = os.environ["SPOOR_QUERY_SERVICE"]
INDEXER = os.environ["SPOOR_INDEXER"]
SOURCE = os.environ["SPOOR_SOURCE_DIR"]
ADS = os.path.join(SOURCE, "reference_images", "sample_ads")
KEYS = {"platform": "py-platform-key", "curator": "py-curator-key",
        "investigator": "py-investigator-key"}


def read(path):
    with open(path, "rb") as f:
        return f.read()


class ServiceFromPython(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        index = os.path.join(cls.tmp.name, "index")
        subprocess.run([INDEXER, "build", "--index", index,
                        os.path.join(SOURCE, "reference_images", "references")],
                       check=True, stderr=subprocess.DEVNULL)
        keys = os.path.join(cls.tmp.name, "keys.toml")
        with open(keys, "w") as f:
            for role, key in KEYS.items():
                digest = hashlib.sha256(key.encode()).hexdigest()
                f.write(f'[[key]]\nname = "py-{role}"\nsha256 = "{digest}"\n'
                        f'roles = ["{role}"]\n\n')
        port_file = os.path.join(cls.tmp.name, "port")
        cls.server = subprocess.Popen(
            [SERVICE, "--index", index, "--listen", "127.0.0.1:0",
             "--metrics-listen", "", "--api-keys", keys, "--port-file", port_file],
            stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while not os.path.exists(port_file):
            if time.time() > deadline or cls.server.poll() is not None:
                raise RuntimeError("service did not start")
            time.sleep(0.05)
        port = int(open(port_file).read())
        cls.channel = grpc.insecure_channel(
            f"127.0.0.1:{port}",
            options=[("grpc.max_send_message_length", 32 << 20)])
        cls.stub = spoor_pb2_grpc.SpoorStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.server.send_signal(signal.SIGTERM)
        cls.exit_code = cls.server.wait(timeout=30)
        cls.tmp.cleanup()
        assert cls.exit_code == 0, f"service exited {cls.exit_code} on SIGTERM"

    def meta(self, role):
        return [("authorization", "Bearer " + KEYS[role])]

    def match(self, data, role="platform", **options):
        request = spoor_pb2.MatchRequest(
            image=data, options=spoor_pb2.MatchOptions(include_evidence=True, **options),
            ad=spoor_pb2.AdContext(platform="py", ad_id="42", seller_id="s1"))
        return self.stub.Match(request, metadata=self.meta(role), timeout=30)

    def assertCode(self, code, fn):
        with self.assertRaises(grpc.RpcError) as caught:
            fn()
        self.assertEqual(caught.exception.code(), code, caught.exception.details())
        return caught.exception.details()

    def test_sighup_reloads_the_key_file(self):
        # A key appended to the file works after SIGHUP, with no restart.
        new_key = "py-added-after-start"
        keys = os.path.join(self.tmp.name, "keys.toml")
        with open(keys, "a") as f:
            digest = hashlib.sha256(new_key.encode()).hexdigest()
            f.write(f'[[key]]\nname = "py-new"\nsha256 = "{digest}"\n'
                    'roles = ["platform"]\n')
        meta = [("authorization", "Bearer " + new_key)]
        request = spoor_pb2.GetIndexStatsRequest()
        with self.assertRaises(grpc.RpcError) as before:
            self.stub.GetIndexStats(request, metadata=meta, timeout=10)
        self.assertEqual(before.exception.code(),
                         grpc.StatusCode.UNAUTHENTICATED)
        self.server.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while True:
            try:
                self.stub.GetIndexStats(request, metadata=meta, timeout=10)
                break
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.UNAUTHENTICATED)
                self.assertLess(time.time(), deadline, "SIGHUP did not reload")
                time.sleep(0.05)
        self.assertIsNone(self.server.poll())  # still running

    def test_match_finds_the_disguised_elephant(self):
        r = self.match(read(os.path.join(ADS, "ad_elephant_mirrored_crop_phone.jpg")))
        self.assertGreaterEqual(len(r.matches), 1)
        m = r.matches[0]
        self.assertEqual(m.reference.source, "elephant.jpg")
        self.assertEqual(m.reference.labels.species_scientific, "Loxodonta africana")
        self.assertEqual(m.verdict, spoor_pb2.MODIFIED_COPY)
        self.assertTrue(m.evidence.transform.mirrored)
        self.assertGreater(m.evidence.inliers, 15)
        self.assertEqual((r.image.width, r.image.height, r.image.format), (520, 420, "jpeg"))
        self.assertGreater(r.timings.total_ms, 0)

    def test_unrelated_photo_matches_nothing(self):
        r = self.match(read(os.path.join(ADS, "ad_unrelated_lion.jpg")))
        self.assertEqual(len(r.matches), 0)

    def test_error_codes(self):
        details = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, lambda: self.match(b""))
        self.assertIn("image is empty", details)
        details = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT,
                                  lambda: self.match(b"GIF89a broken"))
        self.assertIn("gif", details)
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT,
                        lambda: self.match(read(os.path.join(ADS, "ad_unrelated_lion.jpg")),
                                           min_score=1.5))
        self.assertCode(grpc.StatusCode.UNAUTHENTICATED, lambda: self.stub.Match(
            spoor_pb2.MatchRequest(image=b"x"), timeout=10))
        self.assertCode(grpc.StatusCode.PERMISSION_DENIED,
                        lambda: self.match(b"x", role="curator"))
        self.assertCode(grpc.StatusCode.NOT_FOUND, lambda: self.stub.GetReference(
            spoor_pb2.GetReferenceRequest(name="references/9999"),
            metadata=self.meta("curator"), timeout=10))
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, lambda: self.stub.GetReference(
            spoor_pb2.GetReferenceRequest(name="elephant"),
            metadata=self.meta("curator"), timeout=10))

    def test_add_match_remove(self):
        fruits = read(os.path.join(ADS, "ad_unrelated_fruits.jpg"))
        added = self.stub.AddReference(
            spoor_pb2.AddReferenceRequest(
                image=fruits, source="fruits.jpg",
                labels=spoor_pb2.Labels(item_type="other", case_ref="PY-1")),
            metadata=self.meta("curator"), timeout=30)
        self.assertTrue(added.created)
        r = self.match(fruits)
        self.assertEqual(r.matches[0].reference.name, added.reference.name)
        self.assertEqual(r.matches[0].verdict, spoor_pb2.EXACT)
        self.stub.RemoveReference(
            spoor_pb2.RemoveReferenceRequest(name=added.reference.name),
            metadata=self.meta("curator"), timeout=10)
        self.assertEqual(len(self.match(fruits).matches), 0)

    def test_list_pages_and_stats(self):
        names, token = [], ""
        while True:
            page = self.stub.ListReferences(
                spoor_pb2.ListReferencesRequest(page_size=5, page_token=token),
                metadata=self.meta("curator"), timeout=10)
            names += [r.name for r in page.references]
            token = page.next_page_token
            if not token:
                break
        self.assertGreaterEqual(len(names), 12)
        self.assertEqual(len(names), len(set(names)))
        stats = self.stub.GetIndexStats(spoor_pb2.GetIndexStatsRequest(),
                                        metadata=self.meta("platform"), timeout=10)
        self.assertEqual(stats.descriptor_factory, "IVF1024,PCA64,SHm")
        self.assertGreater(stats.descriptors, 1000)
        self.assertEqual(stats.global_factory, "IVF1024,PQ64")
        self.assertGreaterEqual(stats.global_vectors, 12)
        self.assertGreater(stats.descriptor_index_bytes, stats.global_index_bytes)

    def test_stream_match_keeps_order(self):
        files = ["ad_box_rephotographed.png", "ad_unrelated_lion.jpg",
                 "ad_wall_other_angle.png"]
        requests = (spoor_pb2.StreamMatchRequest(
            correlation_id=name, request=spoor_pb2.MatchRequest(
                image=read(os.path.join(ADS, name)))) for name in files)
        answers = list(self.stub.StreamMatch(requests, metadata=self.meta("platform"),
                                             timeout=60))
        self.assertEqual([a.correlation_id for a in answers], files)
        self.assertEqual(answers[0].response.matches[0].reference.source, "box.png")
        self.assertEqual(len(answers[1].response.matches), 0)
        self.assertEqual(answers[2].response.matches[0].reference.source, "graf1.jpg")

    def test_investigators_follow_a_relisted_item_across_sellers(self):
        lion = read(os.path.join(ADS, "ad_unrelated_lion.jpg"))
        elephant = read(os.path.join(ADS, "ad_elephant_mirrored_crop_phone.jpg"))

        def ad(data, ad_id, seller):
            request = spoor_pb2.MatchRequest(
                image=data, options=spoor_pb2.MatchOptions(include_evidence=True),
                ad=spoor_pb2.AdContext(platform="py-inv", ad_id=ad_id,
                                       seller_id=seller, title="lion " + ad_id))
            return self.stub.Match(request, metadata=self.meta("platform"),
                                   timeout=30)

        first = ad(lion, "1", "alice")
        relist = ad(lion, "2", "bob")
        on_elephant = ad(elephant, "3", "carol")
        self.assertEqual(len(relist.earlier_sightings), 1)
        earlier = relist.earlier_sightings[0]
        self.assertEqual(earlier.sighting.name, first.sighting)
        self.assertEqual(earlier.sighting.ad.seller_id, "alice")
        self.assertEqual(earlier.link.verdict, spoor_pb2.EXACT)

        inv = self.meta("investigator")
        got = self.stub.GetSighting(spoor_pb2.GetSightingRequest(name=relist.sighting),
                                    metadata=inv, timeout=10)
        self.assertEqual(got.ad.title, "lion 2")
        listed = self.stub.ListSightings(
            spoor_pb2.ListSightingsRequest(platform="py-inv", page_size=2),
            metadata=inv, timeout=10)
        self.assertEqual([s.ad.ad_id for s in listed.sightings], ["1", "2"])
        rest = self.stub.ListSightings(
            spoor_pb2.ListSightingsRequest(platform="py-inv", page_size=2,
                                           page_token=listed.next_page_token),
            metadata=inv, timeout=10)
        self.assertEqual([s.ad.ad_id for s in rest.sightings], ["3"])
        history = self.stub.GetAdHistory(
            spoor_pb2.GetAdHistoryRequest(platform="py-inv", ad_id="2"),
            metadata=inv, timeout=10)
        self.assertEqual(len(history.links), 1)
        linked = self.stub.GetSellerLinks(
            spoor_pb2.GetSellerLinksRequest(platform="py-inv", seller_id="alice"),
            metadata=inv, timeout=10)
        self.assertEqual([s.seller_id for s in linked.sellers], ["bob"])
        clusters = self.stub.ListClusters(spoor_pb2.ListClustersRequest(),
                                          metadata=inv, timeout=10)
        ours = [c for c in clusters.clusters
                if any(s.platform == "py-inv" for s in c.sellers)]
        self.assertEqual(len(ours), 1)
        self.assertEqual(sorted(s.seller_id for s in ours[0].sellers),
                         ["alice", "bob"])
        cluster = self.stub.GetCluster(
            spoor_pb2.GetClusterRequest(name="clusters/" + relist.sighting.split("/")[1]),
            metadata=inv, timeout=10)
        self.assertEqual(cluster.name, ours[0].name)
        # Where the elephant reference was seen.
        reference = on_elephant.matches[0].reference.name
        seen = self.stub.GetReferenceSightings(
            spoor_pb2.GetReferenceSightingsRequest(name=reference),
            metadata=inv, timeout=10)
        self.assertIn("carol", [s.ad.seller_id for s in seen.sightings])

        # Reviews are the curator's; deletion the platform's.
        review = spoor_pb2.ReviewLinkRequest(name=earlier.link.name,
                                             review=spoor_pb2.CONFIRMED,
                                             note="same lion photo")
        self.assertCode(grpc.StatusCode.PERMISSION_DENIED, lambda: self.stub.ReviewLink(
            review, metadata=inv, timeout=10))
        confirmed = self.stub.ReviewLink(review, metadata=self.meta("curator"),
                                         timeout=10)
        self.assertEqual(confirmed.review, spoor_pb2.CONFIRMED)
        deleted = self.stub.DeleteSightings(
            spoor_pb2.DeleteSightingsRequest(platform="py-inv", seller_id="bob"),
            metadata=self.meta("platform"), timeout=10)
        self.assertEqual(deleted.deleted_sightings, 1)
        self.assertCode(grpc.StatusCode.NOT_FOUND, lambda: self.stub.GetSighting(
            spoor_pb2.GetSightingRequest(name=relist.sighting), metadata=inv,
            timeout=10))


if __name__ == "__main__":
    unittest.main(verbosity=2)
