from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str]
    is_admin: Mapped[bool] = mapped_column(default=False)
    referral_credit: Mapped[int] = mapped_column(default=0)
