"""The Settings dialog's pages (opened from the avatar menu, or a deep link `?settings=<key>`)."""
