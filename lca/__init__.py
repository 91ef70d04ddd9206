"""Life-cycle assessment of the recorded flows with Brightway.

The only package that imports Brightway. Importing it first points ``BRIGHTWAY2_DIR`` into the
repository, because bw2data otherwise creates its projects, logs and caches in the user's home
(``~/.local/share/Brightway3``, ``~/.local/state/Brightway3``) as soon as it is imported. The
folder is ``$MFA_BRIGHTWAY_DIR`` when set, else ``var/brightway`` at the repository root
(git-ignored); a ``BRIGHTWAY2_DIR`` already in the environment wins.
"""

import os
import warnings
from pathlib import Path

# bw2calc warns on import when pypardiso is absent; it then uses SciPy's sparse solvers, which
# lca.solver chooses between deliberately. The warning would only confuse a user.
warnings.filterwarnings("ignore", message=r"(?s).*pypardiso", category=UserWarning)

if "BRIGHTWAY2_DIR" not in os.environ:
    _DIR = Path(
        os.environ.get("MFA_BRIGHTWAY_DIR")
        or Path(__file__).resolve().parents[1] / "var" / "brightway"
    )
    _DIR.mkdir(parents=True, exist_ok=True)  # bw2data refuses a BRIGHTWAY2_DIR that is missing
    os.environ.setdefault("BRIGHTWAY2_DIR", str(_DIR))
