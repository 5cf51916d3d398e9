"""The notebook side (IPython magics, widget, kernel client): arrives with issue #4."""
