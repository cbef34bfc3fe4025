"""upscope core: the model of an OpenScape Business system and its Unify Phone trunk, and its rules.

Nothing here does network or capture I/O or reads the clock (``now`` is always passed in);
``core.lab`` is the one runnable part and nothing else in core imports it.
"""
