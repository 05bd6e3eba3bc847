from cofounder.cli import app

app(prog_name="cofounder")
