#!/usr/bin/python3
"""Builds reference_images/ from photos in Debian packages.

References are photo cut-outs of protected species (tuxpaint-stamps-default,
GPL-2) composited onto a crop of a landscape wallpaper
(plasma-workspace-wallpapers), each on its own wallpaper so no two references
share background pixels, plus two real photos from opencv-doc. Sample ads are
disguised copies of some references, real re-photographs (opencv-doc) and
unrelated photos. Deterministic: run it again and the files are the same.

Run with Debian's interpreter: /usr/bin/python3 scripts/make_reference_images.py
"""
import csv
import os
import random
import shutil

import cv2
import numpy as np

STAMPS = "/usr/share/tuxpaint/stamps/animals"
WALL = "/usr/share/wallpapers"
CVDATA = "/usr/share/doc/opencv-doc/examples/data"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                   "reference_images")

# (file, stamp, wallpaper, species_scientific, species_common, item_type, CITES)
REFERENCES = [
    ("elephant.jpg", "mammals/elephant.png", "Autumn", "Loxodonta africana",
     "African savanna elephant", "live_animal", "I"),
    ("black_rhino.jpg", "mammals/rhino_black.png", "BytheWater",
     "Diceros bicornis", "Black rhinoceros", "live_animal", "I"),
    ("tiger.jpg", "mammals/cats/tiger.png", "ColdRipple", "Panthera tigris",
     "Tiger", "live_animal", "I"),
    ("sumatran_tiger.jpg", "mammals/cats/tiger_sumatran.png", "EveningGlow",
     "Panthera tigris sondaica", "Sumatran tiger", "live_animal", "I"),
    ("gorilla.jpg", "mammals/apes/gorilla.png", "FallenLeaf",
     "Gorilla gorilla", "Western gorilla", "live_animal", "I"),
    ("chimpanzee.jpg", "mammals/apes/chimp.png", "Kite", "Pan troglodytes",
     "Chimpanzee", "live_animal", "I"),
    ("emperor_tamarin.jpg", "mammals/apes/tamarin_emperor.png", "Path",
     "Saguinus imperator", "Emperor tamarin", "live_animal", "II"),
    ("quetzal.jpg", "birds/quetzal.png", "summer_1am", "Pharomachrus mocinno",
     "Resplendent quetzal", "live_animal", "I"),
    ("owl.jpg", "birds/owl.png", "OneStandsOut", "Strigiformes", "Owl",
     "live_animal", "II"),
    ("seahorse.jpg", "fish/seahorse.png", "DarkestHour", "Hippocampus",
     "Seahorse", "live_animal", "II"),
]

LICENCE_STAMP = "GPL-3 (GPL-2+ tuxpaint-stamps-default cut-out on an LGPL-3 plasma-workspace-wallpapers background)"


def wallpaper(name):
    d = os.path.join(WALL, name, "contents", "images")
    files = sorted(os.listdir(d))
    pick = "1920x1080.jpg" if "1920x1080.jpg" in files else \
        ("1920x1080.png" if "1920x1080.png" in files else files[-1])
    return cv2.imread(os.path.join(d, pick), cv2.IMREAD_COLOR)


def composite(stamp_path, background, rng, size=(800, 600)):
    bg = cv2.resize(background, size, interpolation=cv2.INTER_AREA)
    stamp = cv2.imread(os.path.join(STAMPS, stamp_path), cv2.IMREAD_UNCHANGED)
    h, w = stamp.shape[:2]
    scale = min(size[0] * 0.7 / w, size[1] * 0.8 / h)
    stamp = cv2.resize(stamp, (int(w * scale), int(h * scale)),
                       interpolation=cv2.INTER_AREA)
    h, w = stamp.shape[:2]
    x = rng.randint(0, size[0] - w)
    y = rng.randint(0, size[1] - h)
    alpha = stamp[:, :, 3:4].astype(np.float32) / 255.0
    roi = bg[y:y + h, x:x + w].astype(np.float32)
    bg[y:y + h, x:x + w] = (alpha * stamp[:, :, :3] + (1 - alpha) * roi).astype(np.uint8)
    return bg


def main():
    rng = random.Random(20261128)
    refs = os.path.join(OUT, "references")
    ads = os.path.join(OUT, "sample_ads")
    for d in (refs, ads):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    rows = []
    images = {}
    for (name, stamp, wall, sci, common, item, cites) in REFERENCES:
        img = composite(stamp, wallpaper(wall), rng)
        images[name] = img
        cv2.imwrite(os.path.join(refs, name), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        rows.append([name, sci, common, item, cites,
                     "tuxpaint-stamps-default " + stamp, "", LICENCE_STAMP])
    shutil.copy(os.path.join(CVDATA, "box.png"), os.path.join(refs, "box.png"))
    rows.append(["box.png", "", "carved box (stand-in for a carved ivory item)",
                 "other", "", "opencv-doc examples/data/box.png", "DEMO-CASE-1",
                 "BSD-3-Clause (OpenCV)"])
    graf = cv2.imread(os.path.join(CVDATA, "graf1.png"))
    cv2.imwrite(os.path.join(refs, "graf1.jpg"), graf, [cv2.IMWRITE_JPEG_QUALITY, 90])
    rows.append(["graf1.jpg", "", "painted wall (re-photograph demo)", "other", "",
                 "opencv-doc examples/data/graf1.png", "", "BSD-3-Clause (OpenCV)"])
    with open(os.path.join(refs, "manifest.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "species_scientific", "species_common", "item_type",
                    "cites_appendix", "source", "case", "licence"])
        w.writerows(rows)

    # Sample ads: disguised copies, real re-photographs, unrelated photos.
    el = images["elephant.jpg"]
    h, w = el.shape[:2]
    crop = cv2.flip(el[int(h * .15):int(h * .85), int(w * .1):int(w * .75)], 1)
    cv2.putText(crop, "+254 712 555 019  WhatsApp", (20, crop.shape[0] - 30),
                cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 3)
    cv2.imwrite(os.path.join(ads, "ad_elephant_mirrored_crop_phone.jpg"), crop,
                [cv2.IMWRITE_JPEG_QUALITY, 60])
    cells = [images["tiger.jpg"], wallpaper("PastelHills"), wallpaper("Grey"),
             images["gorilla.jpg"]]
    cells = [cv2.resize(c, (400, 300), interpolation=cv2.INTER_AREA) for c in cells]
    collage = np.vstack([np.hstack(cells[:2]), np.hstack(cells[2:])])
    cv2.imwrite(os.path.join(ads, "ad_collage_tiger_gorilla.jpg"), collage,
                [cv2.IMWRITE_JPEG_QUALITY, 80])
    rhino = cv2.rotate(images["black_rhino.jpg"], cv2.ROTATE_90_CLOCKWISE)
    rhino = cv2.resize(rhino, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    frame = np.full((rhino.shape[0] + 160, rhino.shape[1] + 40, 3), 245, np.uint8)
    frame[:50] = (40, 40, 40)
    frame[80:80 + rhino.shape[0], 20:20 + rhino.shape[1]] = rhino
    cv2.putText(frame, "rare horn piece DM me", (20, frame.shape[0] - 35),
                cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 2)
    cv2.imwrite(os.path.join(ads, "ad_screenshot_rotated_rhino.png"), frame)
    shutil.copy(os.path.join(CVDATA, "box_in_scene.png"),
                os.path.join(ads, "ad_box_rephotographed.png"))
    shutil.copy(os.path.join(CVDATA, "graf3.png"),
                os.path.join(ads, "ad_wall_other_angle.png"))
    lion = composite("mammals/cats/lion.png", wallpaper("PastelHills"), rng)
    cv2.imwrite(os.path.join(ads, "ad_unrelated_lion.jpg"), lion,
                [cv2.IMWRITE_JPEG_QUALITY, 85])
    shutil.copy(os.path.join(CVDATA, "fruits.jpg"),
                os.path.join(ads, "ad_unrelated_fruits.jpg"))


if __name__ == "__main__":
    main()
