from pydantic import BaseModel, ConfigDict


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str


class UserCreate(BaseModel):
    email: str
    password: str


class UserAdminUpdate(BaseModel):
    email: str | None = None
    is_admin: bool | None = None


class UserInvite(BaseModel):
    email: str
    referral_credit: int


class UserProfileIn(BaseModel):
    email: str
