"""The PASS/FAIL lines every smoke script prints, and how many failed.

`check = Checks()`, then `check(label, ok, detail)` per assertion; `check.failures` at the
end decides the script's exit status.
"""


class Checks:
    """Prints `PASS <label>` or `FAIL <label> <detail>` and counts the failures."""

    def __init__(self):
        self.failures = 0

    def __call__(self, label, ok, detail=""):
        if ok:
            print(f"PASS {label}")
        else:
            self.failures += 1
            print(f"FAIL {label} {detail}")
