"""The people who use the web view and their roles, kept in the reports database (`users`).

`leader` (the Standing Committee) and `office` (the City Party Committee Office) see every
page; `unit` sees its own unit's. Only an `office` user with the approver flag approves
reports. A password is made when the user is added, shown once, stored only as an argon2
hash, and must be changed at the first login."""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo.asynchronous.database import AsyncDatabase

from shared import mongo

ROLES = ("office", "leader", "unit")
ROLE_NAMES = {"office": "Văn phòng Thành ủy", "leader": "Lãnh đạo (Ban Thường vụ)", "unit": "Cơ quan, đơn vị"}
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 12
_HASHER = PasswordHasher()


@functools.cache
def _decoy() -> str:
    """Verified when the name is unknown, so that a wrong name costs the time a wrong password
    does. Made at the first need, not at import: argon2 takes 64 MB while it hashes, which every
    reports process paid at start-up, on top of its imports."""
    return _HASHER.hash(secrets.token_urlsafe(16))


class BadInput(ValueError):
    """What was asked cannot be done; the message says why, in Vietnamese."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    unit: str | None
    approver: bool
    must_change: bool
    session: int  # bumped when the password changes: older sessions end

    @classmethod
    def of(cls, doc: dict) -> "User":
        return cls(name=doc["_id"], role=doc["role"], unit=doc.get("unit"), approver=bool(doc.get("approver")),
                   must_change=bool(doc.get("must_change")), session=doc.get("session", 0))

    def sees_unit(self, unit: str | None) -> bool:
        return self.role != "unit" or unit == self.unit

    @property
    def may_approve(self) -> bool:
        return self.role == "office" and self.approver


class UsersStore:
    def __init__(self, db: AsyncDatabase):
        self.users = db.users

    async def get(self, name: str) -> dict | None:
        return await self.users.find_one({"_id": name})

    async def insert(self, doc: dict) -> bool:
        return await mongo.insert_once(self.users, doc)

    async def all(self) -> list[dict]:
        return [d async for d in self.users.find({}, {"hash": 0}, sort=[("_id", 1)])]

    async def set_password(self, name: str, *, hash: str, session: int) -> None:
        await self.users.update_one({"_id": name}, {"$set": {"hash": hash, "must_change": False, "session": session,
                                                             "changed_at": _now()}})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def check_new_user(*, name: str, role: str, unit: str | None, approver: bool, units: set[str]) -> None:
    """Refuse a user that could not work: every reason at once."""
    problems = []
    if not NAME.match(name):
        problems.append(f"tên đăng nhập {name!r} phải gồm 2-64 chữ thường không dấu, số, '.', '_' hoặc '-'")
    if role not in ROLES:
        problems.append(f"vai trò {role!r} không có; chọn một trong {', '.join(ROLES)}")
    if role == "unit" and not unit:
        problems.append("vai trò unit cần --unit (mã cơ quan, đơn vị)")
    if role != "unit" and unit:
        problems.append("--unit chỉ dùng với vai trò unit")
    if unit and unit not in units:
        problems.append(f"không có đơn vị {unit!r} trong danh mục" + ("" if units else " (danh mục chưa được nạp)"))
    if approver and role != "office":
        problems.append("chỉ người dùng vai trò office mới được --approver")
    if problems:
        raise BadInput("; ".join(problems))


async def add_user(*, users: UsersStore, name: str, role: str, unit: str | None, approver: bool,
                   units: set[str]) -> str:
    """Add a user with a one-time password; return the password (it is stored only hashed)."""
    check_new_user(name=name, role=role, unit=unit, approver=approver, units=units)
    password = secrets.token_urlsafe(12)
    doc = {"_id": name, "role": role, "unit": unit, "approver": approver, "must_change": True, "session": 0,
           "hash": await asyncio.to_thread(_HASHER.hash, password), "created_at": _now()}
    if not await users.insert(doc):
        raise BadInput(f"người dùng {name!r} đã có")
    return password


async def authenticate(*, users: UsersStore, name: str, password: str) -> User | None:
    """The user whose name and password these are; None otherwise (in the same time either way)."""
    decoy = await asyncio.to_thread(_decoy)  # the first login pays for it, whatever the name
    doc = await users.get(name) if NAME.match(name) else None
    good = await asyncio.to_thread(_verify, doc["hash"] if doc else decoy, password)
    return User.of(doc) if doc and good else None


def _verify(hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def change_password(*, users: UsersStore, user: User, current: str, new: str, repeat: str) -> User:
    """Set a new password after checking the current one; the user as it is now (older sessions end)."""
    problems = []
    if len(new) < MIN_PASSWORD:
        problems.append(f"mật khẩu mới cần ít nhất {MIN_PASSWORD} ký tự")
    if new != repeat:
        problems.append("hai lần nhập mật khẩu mới không khớp")
    if new == current:
        problems.append("mật khẩu mới phải khác mật khẩu hiện tại")
    if problems:
        raise BadInput("; ".join(problems))
    if await authenticate(users=users, name=user.name, password=current) is None:
        raise BadInput("mật khẩu hiện tại không đúng")
    await users.set_password(user.name, hash=await asyncio.to_thread(_HASHER.hash, new), session=user.session + 1)
    return User.of(await users.get(user.name))
