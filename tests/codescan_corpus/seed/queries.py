"""The seed document's code sample 4 of 5, verbatim (expect markers added)."""

from sqlalchemy import select, func, and_, or_, case
from sqlalchemy.orm import aliased

class OptimizedQueryService:
    def __init__(self, db: AsyncSession):
        self.db = db
    
    async def complex_analytics_query(
        self, 
        start_date: datetime,
        end_date: datetime
    ) -> dict:
        # サブクエリ最適化
        subquery = select(
            OptimizedItem.category_id,
            func.count(OptimizedItem.id).label('item_count'),
            func.sum(
                case(
                    (OptimizedItem.metadata['price'].astext.cast(Integer) > 100, 1),
                    else_=0
                )
            ).label('expensive_items')
        ).where(
            and_(
                OptimizedItem.created_at >= start_date,
                OptimizedItem.created_at <= end_date
            )
        ).group_by(OptimizedItem.category_id).subquery()
        
        # メインクエリ（JOIN最適化）
        query = select(
            Category.name.label('category_name'),
            subquery.c.item_count,
            subquery.c.expensive_items,
            func.round(
                (subquery.c.expensive_items.cast(float) / subquery.c.item_count * 100), 2
            ).label('expensive_percentage')
        ).select_from(
            Category.__table__.join(
                subquery, 
                Category.id == subquery.c.category_id
            )
        ).order_by(subquery.c.item_count.desc())
        
        result = await self.db.execute(query)
        return [dict(row) for row in result]  # expect: FSA111
    
    async def optimized_search(
        self, 
        search_term: str,
        filters: dict = None
    ) -> List[OptimizedItem]:
        # フルテキスト検索最適化
        query = select(OptimizedItem)
        
        if search_term:
            # PostgreSQL フルテキスト検索
            query = query.where(
                or_(
                    OptimizedItem.name.ilike(f'%{search_term}%'),  # expect: FSA107
                    OptimizedItem.metadata['description'].astext.ilike(f'%{search_term}%')  # expect: FSA107
                )
            )
        
        # 動的フィルタ適用
        if filters:
            for key, value in filters.items():
                if hasattr(OptimizedItem, key):
                    query = query.where(getattr(OptimizedItem, key) == value)
        
        # インデックス活用の確認
        result = await self.db.execute(query)
        return result.scalars().all()
