"""Suite-wide pytest settings. Area fixtures live in each tests/<area>/conftest.py."""
