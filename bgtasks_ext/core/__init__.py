"""The engine: pure Python, no Jupyter, tornado, IPython or ipywidgets imports.

The server, kernel and lab sides are adapters around what is here.
"""
