"""The tray's settings: a small JSON file in the user's config folder (written atomically, so a
crash never leaves half a file), the Anthropic API key in the Secret Service through ``keyring``
(never in a plain file), and the XDG autostart entry for "start at login".
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..pricing import DEFAULT_LOCAL_URL, DEFAULT_MODEL
from ..vocabulary import DEFAULT_GOAL, GOALS

# openai: any OpenAI-compatible server, e.g. a local Ollama or llama.cpp (nothing leaves the
# machine when it is local)
BRAINS = ("offline", "claude", "openai")
KEYRING_SERVICE, KEYRING_USER = "schedcp", "anthropic"  # cli.agent._api_key reads the same
AUTOSTART_NAME = "schedcp-tray.desktop"
MAX_BUDGET_USD = 100.0
MAX_BUDGET_TOKENS = 100_000_000


def config_dir() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("schedcp"))


def data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("schedcp"))


def atomic_write(path: Path, text: str, mode: int = 0o600) -> None:
    """Write, fsync, rename: readers see the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass
class Settings:
    default_goal: str = DEFAULT_GOAL  # one of vocabulary.GOALS
    brain: str = "offline"  # offline|claude|openai
    model: str = DEFAULT_MODEL  # Claude's
    budget_usd: float = 0.50  # per optimization
    auto_apply_profiles: bool = False
    start_at_login: bool = False
    # the user picked default_goal (tray menu, settings): then the power profile does not
    # change it (power-saver → battery only while this is false)
    goal_chosen: bool = False
    local_url: str = DEFAULT_LOCAL_URL  # the OpenAI-compatible server (brain "openai")
    local_model: str = ""  # its model name, e.g. "qwen3:8b" (no default: the user's server)
    budget_tokens: int = 2_000_000  # per optimization, for the local brain (no price)

    @staticmethod
    def default_path() -> Path:
        return config_dir() / "settings.json"

    def problems(self) -> list[str]:
        """What is wrong with these values, one sentence each (empty: all fine)."""
        out = []
        if self.default_goal not in GOALS:
            out.append(f"default_goal must be one of {', '.join(GOALS)}, "
                       f"not {self.default_goal!r}")
        if self.brain not in BRAINS:
            out.append(f"brain must be one of {', '.join(BRAINS)}, not {self.brain!r}")
        if not isinstance(self.model, str) or not self.model.strip() or len(self.model) > 100:
            out.append("model must be a model name (1-100 characters)")
        b = self.budget_usd
        if (isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b)
                or not 0 < b <= MAX_BUDGET_USD):
            out.append(f"budget_usd must be a number above 0 and at most {MAX_BUDGET_USD:g}, "
                       f"not {b!r}")
        url = self.local_url
        if (not isinstance(url, str) or len(url) > 500 or any(c.isspace() for c in url)
                or not url.startswith(("http://", "https://"))):
            out.append("local_url must be an http:// or https:// address, like "
                       f"{DEFAULT_LOCAL_URL}")
        if not isinstance(self.local_model, str) or len(self.local_model) > 200:
            out.append("local_model must be a model name (at most 200 characters)")
        t = self.budget_tokens
        if isinstance(t, bool) or not isinstance(t, int) or not 1000 <= t <= MAX_BUDGET_TOKENS:
            out.append(f"budget_tokens must be a whole number from 1000 to "
                       f"{MAX_BUDGET_TOKENS}, not {t!r}")
        for name in ("auto_apply_profiles", "start_at_login", "goal_chosen"):
            if not isinstance(getattr(self, name), bool):
                out.append(f"{name} must be true or false")
        return out

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """The saved settings; a missing or broken file, or a bad value, gives the default for
        what is broken (the tray must start whatever the file holds). Never raises."""
        path = path or cls.default_path()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        s = cls()
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name == "budget_usd" and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            trial = cls(**{**asdict(s), f.name: value})
            if not trial.problems():
                s = trial
        return s

    def save(self, path: Path | None = None) -> None:
        """Validate, then write atomically; ValueError says which value is wrong and why."""
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))
        data = asdict(self)
        data["budget_usd"] = float(data["budget_usd"])
        atomic_write(path or self.default_path(), json.dumps(data, indent=1) + "\n")


# -- the API key ------------------------------------------------------------------------------
class SecretsUnavailable(Exception):
    """No usable Secret Service; the message says how to get one."""


HOW_TO_FIX = ("no Secret Service is available to store the API key: install and unlock "
              "gnome-keyring (or KWallet with its Secret Service) in your desktop session, "
              "or set ANTHROPIC_API_KEY in the environment instead")


def redetect_keyring() -> None:
    """Forget keyring's cached backend list and choose again: a session's Secret Service may
    start after the tray (both autostart)."""
    import keyring
    import keyring.backend

    with contextlib.suppress(KeyError, AttributeError):
        keyring.backend.get_all_keyring.reset()
    keyring.core.init_backend()


def _keyring():
    """keyring's backend, detected again if it was detected before the session had one (the
    choice is cached at first use)."""
    import keyring
    from keyring.backends import fail

    def usable(kr) -> bool:
        if isinstance(kr, fail.Keyring):
            return False
        backends = getattr(kr, "backends", None)
        return backends is None or bool(backends)

    try:
        kr = keyring.get_keyring()
        if not usable(kr):
            redetect_keyring()
            kr = keyring.get_keyring()
    except Exception as e:  # detection itself failed (a dead bus socket, say)
        raise SecretsUnavailable(f"{HOW_TO_FIX} ({type(e).__name__}: {e})") from None
    if not usable(kr):
        raise SecretsUnavailable(HOW_TO_FIX)
    return kr


def get_api_key() -> str | None:
    """The stored key, or None (none stored, or no Secret Service: ``secrets_status`` says)."""
    from keyring.errors import KeyringError

    try:
        return _keyring().get_password(KEYRING_SERVICE, KEYRING_USER) or None
    except (SecretsUnavailable, KeyringError):
        return None
    except Exception:  # a D-Bus failure inside the backend: treat as "no secret service"
        return None


def set_api_key(key: str | None) -> None:
    """Store the key (None or "" deletes it). Raises SecretsUnavailable with how to fix it."""
    from keyring.errors import KeyringError, PasswordDeleteError

    kr = _keyring()
    try:
        if key:
            kr.set_password(KEYRING_SERVICE, KEYRING_USER, key.strip())
        else:
            with contextlib.suppress(PasswordDeleteError):  # nothing stored: fine
                kr.delete_password(KEYRING_SERVICE, KEYRING_USER)
    except KeyringError as e:
        raise SecretsUnavailable(f"{HOW_TO_FIX} ({e})") from None
    except Exception as e:  # locked collection, D-Bus errors from secretstorage/jeepney
        raise SecretsUnavailable(f"{HOW_TO_FIX} ({type(e).__name__}: {e})") from None


def secrets_status() -> tuple[bool, str]:
    """(usable, "" or how to fix it): for the settings dialog, before the user types a key."""
    try:
        kr = _keyring()
    except SecretsUnavailable as e:
        return False, str(e)
    return True, f"stored with {type(kr).__module__.rsplit('.', 1)[-1]}"


# -- start at login -----------------------------------------------------------------------------
def autostart_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "autostart" / AUTOSTART_NAME


def tray_command() -> str:
    exe = shutil.which("schedcp-tray")
    if exe:
        return shlex.quote(exe)
    return f"{shlex.quote(sys.executable)} -m schedcp.tray.app"


DESKTOP_ENTRY = """[Desktop Entry]
Type=Application
Name=SchedCP
Comment=Scheduler control panel: optimize the app in front of you
Exec={exec}
Icon=schedcp
Terminal=false
Categories=System;Utility;
X-GNOME-Autostart-enabled=true
X-GNOME-Autostart-Delay=5
"""


def system_autostart_entries() -> list[Path]:
    """The package's own autostart entries ($XDG_CONFIG_DIRS, /etc/xdg by default)."""
    dirs = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    return [p for d in dirs.split(":") if d
            if (p := Path(d) / "autostart" / AUTOSTART_NAME).is_file()]


def set_autostart(enabled: bool) -> Path:
    """Create or remove the user's XDG autostart entry; returns its path either way.

    Where the package installed a system-wide entry, "off" must override it: the user's
    entry then stays, saying ``Hidden=true`` (the autostart spec's way to switch one off)."""
    path = autostart_path()
    if enabled:
        atomic_write(path, DESKTOP_ENTRY.format(exec=tray_command()), 0o644)
    elif system_autostart_entries():
        atomic_write(path, DESKTOP_ENTRY.format(exec=tray_command()).rstrip("\n")
                     + "\nHidden=true\n", 0o644)
    else:
        path.unlink(missing_ok=True)
    return path
