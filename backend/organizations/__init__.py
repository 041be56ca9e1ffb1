"""Social organizations (社会组织) and their volunteers."""
