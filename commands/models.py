"""Models arrive with the commands issue; the app exists now so migrations start from the foundation."""
