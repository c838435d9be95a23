#!/usr/bin/python3
"""Case reports end to end: the real service (with a platform whose policy
keeps thumbnails), ads fed through the `spoor` client, `spoor report` for a
seller, a cluster and a reference; then the page rendered by headless
Chromium must show the ads' pictures (not broken-image icons), and the CSV
and JSON must hold the same facts.

Run by ctest with SPOOR_QUERY_SERVICE, SPOOR_INDEXER, SPOOR_CLIENT and
SPOOR_SOURCE_DIR set.
"""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import cv2
import numpy

SERVICE = os.environ["SPOOR_QUERY_SERVICE"]
INDEXER = os.environ["SPOOR_INDEXER"]
CLIENT = os.environ["SPOOR_CLIENT"]
SOURCE = os.environ["SPOOR_SOURCE_DIR"]
ADS = os.path.join(SOURCE, "reference_images", "sample_ads")
CHROMIUM = shutil.which("chromium")


def colourful_pixels(png):
    image = cv2.imread(png)
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    return int(numpy.count_nonzero((hsv[:, :, 1] > 60) & (hsv[:, :, 2] > 40)))


class CaseReports(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        index = os.path.join(cls.tmp.name, "index")
        subprocess.run([INDEXER, "build", "--index", index,
                        os.path.join(SOURCE, "reference_images", "references")],
                       check=True, stderr=subprocess.DEVNULL)
        config = os.path.join(cls.tmp.name, "spoor.toml")
        with open(config, "w") as f:
            f.write('sighting_thumbnail_platforms = ["reportmarket"]\n')
        port_file = os.path.join(cls.tmp.name, "port")
        cls.server = subprocess.Popen(
            [SERVICE, "--config", config, "--index", index, "--listen",
             "127.0.0.1:0", "--metrics-listen", "", "--port-file", port_file],
            stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while not os.path.exists(port_file) or not open(port_file).read():
            if time.time() > deadline or cls.server.poll() is not None:
                raise RuntimeError("service did not start")
            time.sleep(0.05)
        with open(port_file) as f:
            cls.target = "127.0.0.1:" + f.read().strip()
        ads = os.path.join(cls.tmp.name, "ads")
        subprocess.run(["/usr/bin/python3",
                        os.path.join(SOURCE, "scripts", "demo_ads.py"), ADS, ads],
                       check=True)
        feed = [("1", "alice", "2026-11-02T09:00:00Z",
                 os.path.join(ADS, "ad_unrelated_lion.jpg")),
                ("2", "bob", "2026-11-16T18:05:00Z",
                 os.path.join(ads, "lion_relisted.jpg")),
                ("3", "bob", "2026-11-17T08:00:00Z",
                 os.path.join(ADS, "ad_elephant_mirrored_crop_phone.jpg")),
                ("4", "carol", "2026-11-18T08:00:00Z",
                 os.path.join(ADS, "ad_unrelated_fruits.jpg"))]
        cls.match_output = []
        for ad_id, seller, listed, image in feed:
            out = cls.spoor("match", "--platform", "reportmarket", "--ad-id", ad_id,
                            "--seller", seller, "--listing-time", listed,
                            "--title", "carving " + ad_id, image)
            cls.match_output.append(out)

    @classmethod
    def tearDownClass(cls):
        cls.server.send_signal(signal.SIGTERM)
        cls.server.wait(timeout=30)
        cls.tmp.cleanup()

    @classmethod
    def spoor(cls, *args):
        done = subprocess.run([CLIENT, "--target", cls.target, *args],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise AssertionError(f"spoor {args}: {done.returncode}: {done.stderr}")
        return done.stdout

    def report(self, *args):
        out = os.path.join(self.tmp.name, "report-" + "-".join(
            re.sub(r"[^a-z0-9]", "_", a) for a in args))
        printed = self.spoor("report", *args, "--out", out)
        self.assertIn("report.html", printed)
        return out

    def test_the_relist_is_announced_to_the_platform(self):
        self.assertIn("seen before in reportmarket ad 1 by seller alice",
                      self.match_output[1])

    def test_seller_report_holds_both_accounts_and_renders_their_pictures(self):
        out = self.report("--seller", "reportmarket/alice")
        with open(os.path.join(out, "sightings.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        # Alice's ad and all of Bob's (he is linked to her), oldest first.
        self.assertEqual([(r["ad_id"], r["seller_id"]) for r in rows],
                         [("1", "alice"), ("2", "bob"), ("3", "bob")])
        self.assertEqual(rows[0]["listing_time"], "2026-11-02T09:00:00Z")
        self.assertEqual(rows[0]["title"], "carving 1")
        self.assertIn("Loxodonta africana", rows[2]["labels"])
        self.assertIn("CITES Appendix I", rows[2]["labels"])
        with open(os.path.join(out, "report.json")) as f:
            report = json.load(f)
        self.assertEqual(len(report["sightings"]), 3)
        self.assertEqual(len(report["links"]), 1)
        link = report["links"][0]
        self.assertGreaterEqual(link["score"], 0.5)
        picture = os.path.join(out, "links",
                               "link-" + link["name"].split("/")[1] + ".png")
        drawn = cv2.imread(picture)
        self.assertIsNotNone(drawn)
        self.assertGreater(drawn.shape[1], 400)  # two images side by side
        html = open(os.path.join(out, "report.html"), encoding="utf-8").read()
        self.assertEqual(html.count("<img class='thumb'"), 3)
        self.assertIn("the same picture, edited", html)

        # Rendered, the page shows the pictures: far more colour than the
        # same page with its images taken out (which shows broken-image
        # icons or nothing).
        self.assertIsNotNone(CHROMIUM, "chromium is not installed")
        blank = os.path.join(out, "no-images.html")
        with open(blank, "w", encoding="utf-8") as f:
            f.write(re.sub(r"src='data:[^']*'", "src='missing.png'", html))
        shots = []
        for page in ("report.html", "no-images.html"):
            shot = os.path.join(out, page + ".png")
            subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                            "--hide-scrollbars", "--window-size=1200,2200",
                            "--screenshot=" + shot,
                            "file://" + os.path.join(out, page)],
                           check=True, capture_output=True, timeout=120)
            shots.append(colourful_pixels(shot))
        with_images, without = shots
        self.assertGreater(with_images, without + 20000, shots)

    def test_cluster_and_reference_reports(self):
        clusters = [json.loads(line) for line in
                    self.spoor("clusters", "--min-sellers", "2").splitlines()]
        ours = [c for c in clusters
                if {s["seller_id"] for s in c["sellers"]} == {"alice", "bob"}]
        self.assertEqual(len(ours), 1)
        out = self.report("--cluster", ours[0]["name"])
        with open(os.path.join(out, "sightings.csv"), newline="") as f:
            self.assertEqual(sorted(r["ad_id"] for r in csv.DictReader(f)),
                             ["1", "2"])
        matched = json.loads(self.spoor("sighting", "sightings/3"))
        elephant = matched["matches"][0]["reference"]["name"]
        out = self.report("--reference", elephant)
        with open(os.path.join(out, "sightings.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([r["seller_id"] for r in rows], ["bob"])
        self.assertIn(elephant, rows[0]["matched_references"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
