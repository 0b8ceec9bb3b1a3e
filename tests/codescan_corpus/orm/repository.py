from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import Customer, Order, OrderLine


async def all_orders(session: AsyncSession):
    result = await session.execute(select(Order).limit(100))
    return result.scalars().all()


async def customer_of(session: AsyncSession, order_id: int):
    return await session.get(Customer, order_id)


async def totals(session: AsyncSession):
    orders = await all_orders(session)
    totals = {}
    for order in orders:
        lines = await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))  # expect: FSA101
        totals[order.id] = sum(line.quantity for line in lines)
    return totals


async def owners(session: AsyncSession):
    orders = (await session.scalars(select(Order).where(Order.id > 10))).all()
    return [await customer_of(session, o.id) for o in orders]  # expect: FSA101


async def names(session: AsyncSession):
    orders = (await session.scalars(select(Order).where(Order.id > 10))).all()
    return [o.customer.name for o in orders]  # expect: FSA102


async def names_eager(session: AsyncSession):
    stmt = select(Order).options(selectinload(Order.customer)).where(Order.id > 10)
    orders = (await session.scalars(stmt)).all()
    return [o.customer.name for o in orders]  # ok: eager-loaded


async def line_counts(session: AsyncSession):
    orders = (await session.scalars(select(Order).where(Order.id > 10))).all()
    return {o.id: len(o.lines) for o in orders}  # ok: lines is lazy="selectin"


async def fixed_ids(session: AsyncSession):
    found = []
    for order_id in [1, 2, 3]:
        found.append(await session.get(Order, order_id))  # ok: a literal list, not query results
    return found


async def count_orders(session: AsyncSession):
    rows = (await session.scalars(select(Order).where(Order.id > 0))).all()
    return len(rows)  # expect: FSA108


async def count_properly(session: AsyncSession):
    return await session.scalar(select(func.count()).select_from(Order))


async def orders_and_count(session: AsyncSession):
    rows = (await session.scalars(select(Order).where(Order.id > 0))).all()
    return {"count": len(rows), "items": rows}  # ok: the rows are used too


async def import_orders(session: AsyncSession, payload: list[dict]):
    for item in payload:
        session.add(Order(reference=item["reference"], customer_id=item["customer"]))
        await session.commit()  # expect: FSA109


async def import_orders_once(session: AsyncSession, payload: list[dict]):
    for item in payload:
        session.add(Order(reference=item["reference"], customer_id=item["customer"]))
    await session.commit()


async def search(session: AsyncSession, term: str):
    stmt = select(Customer).where(Customer.name.ilike(f"%{term}%"))  # expect: FSA107
    return (await session.scalars(stmt.limit(20))).all()


async def search_contains(session: AsyncSession, term: str):
    stmt = select(Customer).where(Customer.name.contains(term))  # expect: FSA107
    return (await session.scalars(stmt.limit(20))).all()


async def search_prefix(session: AsyncSession, term: str):
    stmt = select(Customer).where(Customer.name.ilike(f"{term}%"))  # ok: anchored prefix
    return (await session.scalars(stmt.limit(20))).all()


async def tagged(session: AsyncSession, tag: str):
    stmt = select(Order).where(Order.tags.contains([tag]))  # ok: ARRAY containment, GIN-indexable
    return (await session.scalars(stmt.limit(20))).all()
