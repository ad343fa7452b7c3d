# The setup duet replaces (SPEC, preamble): a Flask app on gunicorn for the HTTP API, and the file
# port served by a socketserver started from the app module in a plain (non-daemon) thread running
# serve_forever(). Only what bench/seed.sh measures is here: GET / and the port's PING/QUIT.
import os
import socketserver
import threading

from flask import Flask

app = Flask(__name__)


@app.get("/")
def root():
    return {"name": "seed", "pid": os.getpid()}


class FileHandler(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            word = line.strip().upper()
            if word == b"PING":
                self.wfile.write(b"OK pong\n")
            elif word == b"QUIT":
                self.wfile.write(b"OK bye\n")
                return


files = socketserver.ThreadingTCPServer(
    ("127.0.0.1", int(os.environ["SEED_FILES_PORT"])), FileHandler)
threading.Thread(target=files.serve_forever).start()
