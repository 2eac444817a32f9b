"""The offline laboratory (chapters 5-7): the paper's small-scale experiments on problems
whose every step a program can check.

* :mod:`~prm_lib.lab.problems`: the problems and the exact step checker;
* :mod:`~prm_lib.lab.generator`: a small generator LM trained from scratch, and sampling;
* :mod:`~prm_lib.lab.config`: sizes per scale;
* :mod:`~prm_lib.lab.pipeline`: :func:`build_lab`, the cached laboratory;
* :mod:`~prm_lib.lab.experiments`: reward models under three kinds of supervision,
  the data curves of Figure 4, active learning, scoring rules.
"""
