"""The fault suite runs the e2e harness (tests/e2e/harness.py) on a stack of
its own, so crashing its broker and database touches no other suite."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))
