import os
import time
from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import BackgroundTasks, Body, Depends, FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from models import User
from schemas import UserAdminUpdate, UserCreate, UserInvite, UserOut, UserProfileIn

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://app:s3cr3t-Pa55@db.internal/app")  # expect: FSA405
FALLBACK_URL = "postgresql://app:${DB_PASSWORD}@db/app"  # ok: a placeholder, not a password
EXAMPLE_URL = "postgresql://user:password@localhost/app"  # ok: documentation placeholder
ORIGINS = ["*"]
TABLES = ("users", "audit")
SORTABLE = {"email": User.email, "id": User.id}

engine = create_engine(DATABASE_URL, pool_pre_ping=True)
SessionLocal = sessionmaker(bind=engine)
app = FastAPI()
app.add_middleware(  # expect: FSA401
    CORSMiddleware,
    allow_origins=ORIGINS,
    allow_credentials=True,
)
app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=False)  # ok: no credentials

visits: dict[str, int] = {}  # expect: FSA305
KNOWN_COLUMNS = ("email", "id")


def get_db():
    with SessionLocal() as session:
        yield session


DB = Annotated[Session, Depends(get_db)]


class SortField(str, Enum):
    email = "email"
    id = "id"


@app.get("/users/{user_id}")  # expect: FSA301
def read_user(user_id: int, db: DB):
    user = db.get(User, user_id)
    return user


@app.get("/users/{user_id}/dump")  # expect: FSA301
def dump_user(user_id: int, db: DB):
    user = db.get(User, user_id)
    return user.__dict__


@app.get("/users/{user_id}/safe", response_model=UserOut)
def read_user_safe(user_id: int, db: DB):
    return db.get(User, user_id)


@app.get("/health")
def health():
    return {"status": "ok"}  # ok: a literal dict


@app.get("/users")
def list_users(db: DB, sort: str = "id", direction: str = "asc") -> list[UserOut]:
    column = getattr(User, sort)  # expect: FSA403
    rows = db.execute(text(f"SELECT id, email FROM users ORDER BY {sort} {direction}"))  # expect: FSA402
    return [UserOut(id=r.id, email=r.email) for r in rows] + list(
        db.scalars(select(User).order_by(column).limit(10))
    )


@app.get("/users/sorted")
def list_sorted(db: DB, sort: str = "id") -> list[UserOut]:
    if sort not in SORTABLE:
        raise ValueError(sort)
    column = getattr(User, sort)  # ok: checked against an allow-list first
    return list(db.scalars(select(User).order_by(SORTABLE[sort], column).limit(10)))


@app.get("/users/by-enum")
def list_by_enum(db: DB, sort: SortField, order: Literal["asc", "desc"] = "asc") -> list[UserOut]:
    column = getattr(User, sort.value)  # ok: an Enum the framework validated
    return list(db.scalars(select(User).order_by(column).limit(10)))


@app.get("/columns")
def columns(db: DB) -> dict:
    values = {}
    for key in ("email", "id"):
        values[key] = str(getattr(User, key))  # ok: constant loop keys
    for key in KNOWN_COLUMNS:
        values[key] = str(getattr(User, key))  # ok: a module constant
    return values


@app.get("/stats")
def stats(db: DB, table: str) -> dict:
    counts = {}
    for name in TABLES:
        counts[name] = db.execute(text(f"SELECT count(*) FROM {name}")).scalar()  # ok: constants
    limit = len(counts)
    db.execute(text(f"SELECT * FROM audit LIMIT {limit}"))  # expect: FSA402
    return counts


@app.get("/search")
def search(db: DB, request: Request) -> list[UserOut]:
    term = request.query_params.get("q", "")
    stmt = text("SELECT id, email FROM users WHERE email = '" + term + "'")  # expect: FSA402
    return [UserOut(id=r.id, email=r.email) for r in db.execute(stmt)]


@app.post("/users")
def create_user(payload: Annotated[dict[str, Any], Body()], db: DB) -> UserOut:
    user = User(**payload)  # expect: FSA404
    db.add(user)
    db.commit()
    return UserOut(id=user.id, email=user.email)


@app.post("/users/signup")
def signup(payload: UserCreate, db: DB) -> UserOut:
    user = User(email=payload.email, password_hash=payload.password)  # ok: explicit fields
    db.add(user)
    db.commit()
    return UserOut(id=user.id, email=user.email)


@app.patch("/users/{user_id}")
def update_user(user_id: int, payload: UserAdminUpdate, db: DB) -> UserOut:
    user = db.get(User, user_id)
    for field, value in payload.model_dump(exclude_unset=True).items():
        setattr(user, field, value)  # expect: FSA404
    db.commit()
    return UserOut(id=user.id, email=user.email)


def send_welcome(db: Session, user_id: int) -> None:
    db.get(User, user_id)


def rebuild_index(user_ids: list[int]) -> None:
    for user_id in user_ids:
        time.sleep(0.1)


def log_signup(email: str) -> None:
    print(email)


@app.post("/users/{user_id}/welcome")
def welcome(user_id: int, background: BackgroundTasks, db: DB) -> dict:
    background.add_task(send_welcome, db, user_id)  # expect: FSA302
    background.add_task(rebuild_index, [user_id])  # expect: FSA302
    background.add_task(log_signup, "someone@example.org")  # ok: light work
    return {}


@app.get("/visit")
def visit(page: str) -> dict:
    visits[page] = visits.get(page, 0) + 1
    local_counts = {}
    local_counts[page] = 1  # ok: a local
    return {"visits": visits[page]}


@app.get("/users/page")
def users_page(db: DB, page: int = 1, per_page: Annotated[int, Query(le=100)] = 20) -> list[UserOut]:
    stmt = select(User).order_by(User.id).offset((page - 1) * per_page).limit(per_page)  # expect: FSA106
    return list(db.scalars(stmt))


@app.post("/users/invite")
def invite(payload: UserInvite, db: DB) -> UserOut:
    user = User(**payload.model_dump())  # expect: FSA404
    db.add(user)
    db.commit()
    return UserOut(id=user.id, email=user.email)


@app.post("/users/profile")
def profile(payload: UserProfileIn, db: DB) -> UserOut:
    user = User(**payload.model_dump())  # ok: only fields the API shows anyway
    db.add(user)
    db.commit()
    return UserOut(id=user.id, email=user.email)
