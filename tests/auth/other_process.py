"""Another process serving the same database: reads requests from stdin, answers on stdout, one JSON line
each, so a test can prove what one process commits is seen by the other at once.

Input lines: {"method": "GET", "path": "/api/v1/me", "token": "..."}, or {"cached": true} for how many
principals the process keeps.
"""

import json
import sys


def main() -> None:
    from backend import create_app
    from backend.auth.principals import principals

    app = create_app({"TESTING": True})
    client = app.test_client()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if "cached" in command:
            print(json.dumps({"size": len(principals)}), flush=True)
            continue
        response = client.open(
            command["path"],
            method=command.get("method", "GET"),
            headers={"Authorization": "Bearer " + command["token"]},
        )
        print(json.dumps({"status": response.status_code, "body": response.get_json()}), flush=True)


if __name__ == "__main__":
    main()
