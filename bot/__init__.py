"""nanbyo-bot: wiring, configuration, storage and channels around one core.

Importing this package opens no database, reads no token and starts no thread;
``bot.bootstrap`` does the wiring.
"""
