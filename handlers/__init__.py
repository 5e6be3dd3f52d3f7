"""What the bot says to a message: the route table (``handlers.routes``), the handlers it runs, the
dialogs and calculators, and the message types a channel needs (``handlers.messages``).

Nothing is imported here, so that a channel importing the message types loads only those.
"""
