"""prm_lib: the code behind the book "Let's Verify Step by Step, reproduced".

Data flows one way, one module per stage:

- :mod:`prm_lib.data`       load PRM800K (raw JSONL or stepwise-critic parquet) and MATH
- :mod:`prm_lib.splits`     the MATH500 guard: no test problem ever reaches training data
- :mod:`prm_lib.grading`    final-answer extraction and equivalence
- :mod:`prm_lib.best_of_n`  the paper's best-of-N and majority-voting evaluation
"""

__version__ = "0.1.0"
