"""What the promoted models say across specs: the detectors' alerts."""
