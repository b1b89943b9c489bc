#!/usr/bin/env python3
"""A real SMTP server for the tests: accepts every mail and writes each to its own file.

Usage: sink.py PORT DIRECTORY

Each message becomes DIRECTORY/<uuid>.eml: one `X-Sink-Rcpt: <address>` line per
envelope recipient, then the message exactly as received. A file appears whole (written
under a temporary name, then renamed), so a reader never sees half a message. The server
answers on 127.0.0.1:PORT until it is killed.
"""

import os
import sys
import threading
import uuid

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope):
        name = uuid.uuid4().hex
        temporary = os.path.join(self.directory, name + ".tmp")
        with open(temporary, "wb") as f:
            for rcpt in envelope.rcpt_tos:
                f.write(b"X-Sink-Rcpt: " + rcpt.encode() + b"\r\n")
            f.write(envelope.original_content or envelope.content)
        os.rename(temporary, os.path.join(self.directory, name + ".eml"))
        return "250 Message accepted for delivery"


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
