"""The seed document's code sample 3 of 5, verbatim (expect markers added)."""

from sqlalchemy import Column, Integer, String, DateTime, ForeignKey, Index
from sqlalchemy.ext.declarative import declarative_base
from sqlalchemy.orm import relationship, selectinload, joinedload
from sqlalchemy.dialects.postgresql import UUID, JSONB
import uuid

Base = declarative_base()

class OptimizedItem(Base):
    __tablename__ = "items"
    
    # 最適化されたプライマリキー
    id = Column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name = Column(String(255), nullable=False, index=True)
    category_id = Column(UUID(as_uuid=True), ForeignKey("categories.id"), index=True)
    
    # JSON フィールド最適化
    metadata = Column(JSONB, nullable=True)  # expect: FSA110
    
    # タイムスタンプ
    created_at = Column(DateTime, default=func.now(), index=True)
    updated_at = Column(DateTime, default=func.now(), onupdate=func.now())
    
    # 最適化されたリレーションシップ
    category = relationship(
        "Category", 
        back_populates="items",
        lazy="select"
    )
    
    # 複合インデックス
    __table_args__ = (
        Index('ix_items_category_created', 'category_id', 'created_at'),
        Index('ix_items_name_category', 'name', 'category_id'),
    )

# リポジトリパターン実装
class ItemRepository:
    def __init__(self, db: AsyncSession):
        self.db = db
    
    async def find_with_optimized_loading(
        self, 
        category_id: Optional[UUID] = None,
        limit: int = 100
    ) -> List[OptimizedItem]:
        query = select(OptimizedItem)
        
        if category_id:
            query = query.where(OptimizedItem.category_id == category_id)
        
        # 最適化されたeager loading
        query = query.options(
            selectinload(OptimizedItem.category)
        ).limit(limit)
        
        result = await self.db.execute(query)
        return result.scalars().all()
    
    async def bulk_update_optimized(
        self, 
        updates: List[dict]
    ) -> int:
        # バルク更新最適化
        if not updates:
            return 0
        
        stmt = update(OptimizedItem).where(
            OptimizedItem.id == bindparam('item_id')
        ).values(
            name=bindparam('name'),
            updated_at=func.now()
        )
        
        await self.db.execute(stmt, updates)
        await self.db.commit()
        
        return len(updates)
