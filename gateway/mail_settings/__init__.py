"""Suggest a mail account's server settings from its address, the way Thunderbird does."""
