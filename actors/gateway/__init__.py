"""The Aeron thread: the control gateway, its outbox, the embedded media driver.

The only code of the driver that imports pyaeron (``tests/architecture`` checks that).
"""
