"""The IMAP4rev1 server devices connect to: sans-IO protocol core, sessions, asyncio listeners."""
