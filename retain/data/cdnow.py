"""The CDNOW data set that ships inside lifetimes, converted to the data contract.

CDNOW_master.txt: 23,570 customers who first bought in Q1 1997, their purchases to
June 1998 (69,659 rows). CDNOW_sample.txt: the 2,357-customer sample (1/10) used in
[FHL2005a] for the published BG/NBD results.

The files carry no order id: two identical rows (same customer, day, CDs and amount) are
two orders, and the published estimates count them both.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

FILES = {"master": "CDNOW_master.txt", "sample": "CDNOW_sample.txt"}


def cdnow_transactions(which: str = "master") -> pd.DataFrame:
    if which not in FILES:
        raise ValueError(f"CDNOW file must be one of {sorted(FILES)}, not {which!r}")
    path = resources.files("lifetimes") / "datasets" / FILES[which]
    if which == "master":
        names = ["customer_id", "date", "cds", "amount"]
        raw = pd.read_csv(path, sep=r"\s+", header=0, names=names, dtype={"customer_id": str, "date": str})
    else:
        names = ["customer_id", "master_id", "date", "cds", "amount"]
        raw = pd.read_csv(path, sep=r"\s+", header=None, names=names, dtype={"customer_id": str, "date": str})
    return pd.DataFrame(
        {
            "customer_id": raw["customer_id"].str.lstrip("0").str.zfill(1),
            "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": raw["amount"].astype(float),
        }
    )


def import_cdnow(out: str | Path, which: str = "master") -> tuple[Path, int]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frame = cdnow_transactions(which)
    frame.to_parquet(out / "transactions.parquet", index=False)
    return out, len(frame)
