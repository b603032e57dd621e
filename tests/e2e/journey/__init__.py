"""Issue #7: the whole journey in headless Chromium, over https, against the real provider."""
