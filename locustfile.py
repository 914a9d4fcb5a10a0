"""The repository's entry for `locust -f locustfile.py`: the Locust users live in
the package (`harness/load/locust_user.py`), so an installed tokenproof has them too;
`tokenproof locustfile` prints that file's path."""

from harness.load.locust_user import Fan

__all__ = ["Fan"]
