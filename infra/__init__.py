"""The AWS deployment as AWS CDK stacks: `python3 infra/app.py` synthesizes them (see app.py)."""
