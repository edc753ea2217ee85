"""``python -m tools.stack up|down|status`` (usable before the ``gridwhistle`` CLI exists)."""

from tools.stack.cli import stack_app

if __name__ == "__main__":
    stack_app(prog_name="python -m tools.stack")
