"""The console tests drive routers with the packaging tests' process and RawSocket helpers."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packaging"))
