"""What every layer may use: the user-error type and reading user files."""
