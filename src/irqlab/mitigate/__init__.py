"""Everything that writes the OS: the SavedSetting journal and the knobs it restores."""
