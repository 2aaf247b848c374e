"""gantl.training: the loop, losses, EMA, data stream and distributed helpers.

Importing this package asks Intel MKL for *conditional numerical reproducibility*
(``MKL_CBWR=AUTO``, unless the user set it): without it MKL may pick different code
paths for the same small matrix products from run to run (we saw ADA's batched 3x3
matrix products differ in the last bits between two identical runs), which breaks
gantl's promise that a fixed seed on a CPU gives the same losses and that a resumed
run continues the exact curves. MKL reads the variable at its first call, which
happens after this import in every gantl entry point.
"""

import os

os.environ.setdefault("MKL_CBWR", "AUTO")
