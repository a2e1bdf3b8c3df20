"""One module per export format: each writes its file(s) and verifies them."""
