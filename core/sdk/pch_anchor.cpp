// Anchor for the precompiled torch header; intentionally empty.
