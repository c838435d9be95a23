#!/usr/bin/python3
"""Writes the relisted ads the demo's marketplace feeds to the service: the
sample lion ad as a second seller would post it again (mirrored, cropped,
recompressed, a phone number stamped on it). The lion is in no reference
bank, so only the sighting of the first ad can catch the relist.

usage: demo_ads.py SAMPLE_ADS_DIR OUT_DIR
"""
import os
import sys

import cv2


def main():
    sample_ads, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    lion = cv2.imread(os.path.join(sample_ads, "ad_unrelated_lion.jpg"))
    if lion is None:
        sys.exit("demo_ads.py: cannot read ad_unrelated_lion.jpg")
    h, w = lion.shape[:2]
    relist = cv2.flip(lion[int(0.08 * h):, int(0.1 * w):int(0.95 * w)], 1)
    cv2.putText(relist, "+255 712 345 678", (12, relist.shape[0] - 16),
                cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.imwrite(os.path.join(out, "lion_relisted.jpg"), relist,
                [cv2.IMWRITE_JPEG_QUALITY, 70])


if __name__ == "__main__":
    main()
