"""What the local stack leaves for a developer: `.local/stack.env`, sourced by a shell as the
README shows, and the mail catcher's `.eml` files, which a restart never overwrites."""

from __future__ import annotations

import smtplib
import subprocess
from email.message import EmailMessage

from deploy.local import infra, mailsink, stack


def test_stack_env_sources_cleanly_in_bash_and_reads_back(tmp_path):
    values = {"NQT_SMTP_SINK": "127.0.0.1:1025", "NQT_MAIL_DIR": str(tmp_path / "a dir > with mail"),
              "NQT_REPORTS_URL": "http://127.0.0.1:8082"}
    path = tmp_path / "stack.env"
    stack.write_env(path, values)
    shell = subprocess.run(["bash", "-c", 'set -a; . "$1"; set +a; printf "%s|%s" "$NQT_MAIL_DIR" "$NQT_SMTP_SINK"',
                            "bash", str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert (shell.returncode, shell.stderr) == (0, "")
    assert shell.stdout == f"{values['NQT_MAIL_DIR']}|127.0.0.1:1025"
    assert stack.read_env(path) == values
    assert list(tmp_path.iterdir()) == [path]  # no file made by a stray redirection


def send(port: int, subject: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "nqt@hanoi.example", "vptu@hanoi.example", subject
    message.set_content(subject)
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(message)


def test_the_mail_catcher_keeps_earlier_messages_across_a_restart(tmp_path):
    for subject in ("before the restart", "after the restart"):
        controller, _ = mailsink.serve(infra.free_port(), tmp_path)
        try:
            send(controller.port, subject)
        finally:
            controller.stop()
    kept = {p.name: p.read_text() for p in sorted(tmp_path.glob("*.eml"))}
    assert list(kept) == ["00001.eml", "00002.eml"]
    assert "before the restart" in kept["00001.eml"] and "after the restart" in kept["00002.eml"]
