"""The notebook side: magics, the kernel client, the live widget, the in-kernel executor.

Imported lazily (``import bgtasks_ext`` must stay light: worker processes import it).
"""
