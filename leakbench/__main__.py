from leakbench.cli import entry

entry()
